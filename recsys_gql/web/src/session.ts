/** Who is rating (token + user id), their ratings, and the actions every movie card needs. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Problem } from "./client";

export type RateOutcome = { ok: true; message: string } | { ok: false; problem: Problem };

export interface Session {
  userId: number | null;
  /** The viewer's ratings by movie id (what the stars show). */
  ratings: ReadonlyMap<number, number>;
  /** Bumped after every saved rating, so "For you" asks again. */
  version: number;
  rate: (movieId: number, value: number) => Promise<RateOutcome>;
  openMovie: (movieId: number) => void;
}

export const SessionContext = createContext<Session>({
  userId: null,
  ratings: new Map(),
  version: 0,
  rate: async () => ({
    ok: false,
    problem: { kind: "refused", message: "Sign up first to rate movies." },
  }),
  openMovie: () => undefined,
});

export function useSession(): Session {
  return useContext(SessionContext);
}
