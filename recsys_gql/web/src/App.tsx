/** The page: account, search, "For you", the popular grid and the open movie. */
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { tokenStore, type Api, type Problem } from "./client";
import { Account } from "./components/Account";
import { ForYou } from "./components/ForYou";
import { MovieDetail } from "./components/MovieDetail";
import { Popular } from "./components/Popular";
import { Search } from "./components/Search";
import { ApiContext, LiveContext } from "./hooks";
import type { Live } from "./live";
import { RATE, SIGN_UP, VIEWER } from "./operations";
import { SessionContext, type RateOutcome, type Session } from "./session";

export function App({ api, live = null }: { api: Api; live?: Live | null }) {
  const [token, setToken] = useState<string | null>(() => tokenStore.get());
  const [userId, setUserId] = useState<number | null>(null);
  const [ratings, setRatings] = useState<ReadonlyMap<number, number>>(new Map());
  const [version, setVersion] = useState(0);
  const [busy, setBusy] = useState(false);
  const [accountProblem, setAccountProblem] = useState<Problem | undefined>(undefined);
  const [openId, setOpenId] = useState<number | null>(null);
  const [genres, setGenres] = useState<string[]>([]);

  const useToken = useCallback(
    async (candidate: string) => {
      setBusy(true);
      setAccountProblem(undefined);
      tokenStore.set(candidate);
      const result = await api.run(VIEWER, {});
      setBusy(false);
      const viewer = result.data?.viewer;
      if (result.problem) {
        setAccountProblem(result.problem);
      } else if (!viewer) {
        tokenStore.set(null);
        setToken(null);
        setAccountProblem({
          kind: "refused",
          message: "That token was not accepted (mistyped or revoked). Sign up for a new one.",
        });
        return;
      }
      setToken(candidate);
      if (viewer) {
        setUserId(viewer.id);
        setRatings(new Map(viewer.ratings.edges.map((e) => [e.node.movie.id, e.node.rating])));
      }
    },
    [api],
  );

  useEffect(() => {
    if (token) void useToken(token); // a returning visitor: who is this token?
    // only on first render: later tokens come through signUp / useToken
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const signUp = async () => {
    setBusy(true);
    setAccountProblem(undefined);
    const result = await api.run(SIGN_UP, {});
    setBusy(false);
    const signed = result.data?.signUp;
    if (!signed) {
      setAccountProblem(
        result.problem ?? { kind: "server", message: "Signing up failed; please try again." },
      );
      return;
    }
    tokenStore.set(signed.token);
    setToken(signed.token);
    setUserId(signed.user.id);
    setRatings(new Map());
  };

  const signOut = () => {
    tokenStore.set(null);
    setToken(null);
    setUserId(null);
    setRatings(new Map());
  };

  const rate = useCallback(
    async (movieId: number, value: number): Promise<RateOutcome> => {
      if (userId === null) {
        return { ok: false, problem: { kind: "refused", message: "Sign up first to rate movies." } };
      }
      const result = await api.run(RATE, { userId, movieId, rating: value });
      if (result.problem) return { ok: false, problem: result.problem };
      const payload = result.data?.rateMovie;
      switch (payload?.__typename) {
        case "RatingSaved":
          setRatings((old) => new Map(old).set(movieId, payload.rating.rating));
          setVersion((n) => n + 1);
          return { ok: true, message: `Saved: ${payload.rating.rating} stars.` };
        case "InvalidRating":
          return { ok: false, problem: { kind: "refused", message: payload.message } };
        case "MovieNotFound":
          return { ok: false, problem: { kind: "refused", message: payload.message } };
        case "Unauthenticated":
        case "Forbidden":
          return {
            ok: false,
            problem: {
              kind: "refused",
              message: `${payload.message} Sign out, then sign up or paste a valid token.`,
            },
          };
        default:
          return { ok: false, problem: { kind: "server", message: "The rating was not saved." } };
      }
    },
    [api, userId],
  );

  const session: Session = useMemo(
    () => ({ userId, ratings, version, rate, openMovie: setOpenId }),
    [userId, ratings, version, rate],
  );

  return (
    <ApiContext.Provider value={api}>
      <LiveContext.Provider value={live}>
      <SessionContext.Provider value={session}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <h1>
            Movie picks <span class="sub">recsys-gql</span>
          </h1>
          <Account
            userId={userId}
            ratingsCount={ratings.size}
            token={token}
            busy={busy}
            problem={accountProblem}
            onSignUp={() => void signUp()}
            onUseToken={(t) => void useToken(t)}
            onSignOut={signOut}
          />
        </header>
        <main id="main">
          {openId !== null && <MovieDetail movieId={openId} onClose={() => setOpenId(null)} />}
          <Search genres={genres} />
          <div class="columns">
            <ForYou genres={genres} />
            <Popular genres={genres} onGenres={setGenres} />
          </div>
        </main>
        <footer>
          Built on the public GraphQL API — explore it at <a href="graphql">/graphql</a>.
        </footer>
      </SessionContext.Provider>
      </LiveContext.Provider>
    </ApiContext.Provider>
  );
}
