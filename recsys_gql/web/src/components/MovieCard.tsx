/** One movie in a list: its title (opens the movie), year, genres, rating and the stars. */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Problem } from "../client";
import { useSession } from "../session";
import { ErrorNotice } from "./ErrorNotice";
import { Stars } from "./Stars";

export interface MovieSummary {
  id: number;
  title: string;
  year?: number | null;
  genres: string[];
  averageRating?: number | null;
}

export function formatAverage(value: number | null | undefined): string {
  return value === null || value === undefined ? "no ratings yet" : `★ ${value.toFixed(1)}`;
}

export function RateControl({ movie }: { movie: MovieSummary }) {
  const session = useSession();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | undefined>(undefined);

  if (session.userId === null) {
    return <p class="hint">Sign up to rate it.</p>;
  }
  const rate = async (value: number) => {
    setBusy(true);
    setSaved(undefined);
    setProblem(undefined);
    const outcome = await session.rate(movie.id, value);
    setBusy(false);
    if (outcome.ok) setSaved(outcome.message);
    else setProblem(outcome.problem);
  };
  return (
    <div class="rate">
      <Stars title={movie.title} value={session.ratings.get(movie.id)} busy={busy} onRate={rate} />
      <p class="saved" role="status">
        {saved ?? ""}
      </p>
      <ErrorNotice problem={problem} />
    </div>
  );
}

export function MovieCard({ movie, children }: { movie: MovieSummary; children?: ComponentChildren }) {
  const session = useSession();
  return (
    <li class="card" data-movie-id={movie.id}>
      <h3>
        <button type="button" class="link" onClick={() => session.openMovie(movie.id)}>
          {movie.title}
        </button>
      </h3>
      <p class="meta">
        {movie.year ?? "year unknown"} · {movie.genres.join(", ") || "no genre"}
        {movie.averageRating !== undefined && <> · {formatAverage(movie.averageRating)}</>}
      </p>
      {children}
      <RateControl movie={movie} />
    </li>
  );
}
