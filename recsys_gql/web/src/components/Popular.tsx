/** The popular grid: where a new user starts, picking movies they liked (cold start). */
import { useEffect, useState } from "preact/hooks";
import { useQuery } from "../hooks";
import { HOME } from "../operations";
import { useSession } from "../session";
import { ErrorNotice } from "./ErrorNotice";
import { GenreSelect } from "./GenreSelect";
import { MovieCard } from "./MovieCard";

export function Popular({
  genres,
  onGenres,
}: {
  genres: string[];
  onGenres: (genres: string[]) => void;
}) {
  const session = useSession();
  const [genre, setGenre] = useState("");
  const { data, problem, loading, reload } = useQuery(
    HOME,
    { genres: genre ? [genre] : null },
    genre,
  );
  const known = data?.genres;
  useEffect(() => {
    if (known) onGenres(known);
  }, [known, onGenres]);
  const onboarding = session.userId !== null && session.ratings.size < 5;
  return (
    <section aria-labelledby="popular-title" class="panel" aria-busy={loading}>
      <h2 id="popular-title">{onboarding ? "Start here: pick movies you liked" : "Popular"}</h2>
      {onboarding && (
        <p>
          Rate a few you have seen (half stars are fine); “For you” changes after each one.
        </p>
      )}
      <GenreSelect
        label="Popular in"
        anyLabel="all genres"
        genres={genres}
        value={genre}
        onChange={setGenre}
      />
      <ErrorNotice problem={problem} onRetry={reload} />
      {loading && !data && <p>Loading…</p>}
      <ul class="cards grid" aria-label="Popular movies">
        {(data?.popularMovies ?? []).map((movie) => (
          <MovieCard key={movie.id} movie={movie} />
        ))}
      </ul>
    </section>
  );
}
