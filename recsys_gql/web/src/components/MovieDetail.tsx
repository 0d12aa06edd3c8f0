/** One movie: title, year, genres, overview, average rating, the stars and similar movies. */
import { useEffect, useRef } from "preact/hooks";
import { useQuery } from "../hooks";
import { MOVIE } from "../operations";
import { useSession } from "../session";
import { ErrorNotice } from "./ErrorNotice";
import { formatAverage, RateControl } from "./MovieCard";

export function MovieDetail({ movieId, onClose }: { movieId: number; onClose: () => void }) {
  const session = useSession();
  const heading = useRef<HTMLHeadingElement>(null);
  const { data, problem, loading, reload } = useQuery(MOVIE, { id: movieId }, String(movieId));
  const movie = data?.movie?.id === movieId ? data.movie : undefined;

  useEffect(() => {
    heading.current?.focus();
  }, [movie?.id]);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  return (
    <section class="panel detail" aria-labelledby="detail-title" aria-busy={loading}>
      <button type="button" class="close" onClick={onClose} aria-label="Close the movie">
        ✕
      </button>
      <ErrorNotice problem={problem} onRetry={reload} />
      {!movie && loading && (
        <h2 id="detail-title" ref={heading} tabIndex={-1}>
          Loading…
        </h2>
      )}
      {!movie && !loading && !problem && (
        <h2 id="detail-title" ref={heading} tabIndex={-1}>
          No movie has id {movieId}.
        </h2>
      )}
      {movie && (
        <>
          <h2 id="detail-title" ref={heading} tabIndex={-1}>
            {movie.title}
          </h2>
          <p class="meta">
            {movie.year ?? "year unknown"} · {movie.genres.join(", ")} ·{" "}
            {formatAverage(movie.averageRating)}
            {movie.ratingsCount > 0 && ` from ${movie.ratingsCount} ratings`}
          </p>
          <p class="overview">{movie.overview ?? "No overview for this movie."}</p>
          <RateControl movie={movie} />
          <h3>Similar movies</h3>
          <ul class="similar">
            {movie.similar.map((hit) => (
              <li key={hit.movie.id}>
                <button type="button" class="link" onClick={() => session.openMovie(hit.movie.id)}>
                  {hit.movie.title}
                </button>{" "}
                <span class="meta">{hit.movie.genres.join(", ")}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
