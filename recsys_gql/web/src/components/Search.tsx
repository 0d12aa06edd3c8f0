/** Find movies by title (`movies(search:)`) or by describing them (`searchMovies`), by genre. */
import { useState } from "preact/hooks";
import type { Problem } from "../client";
import { useApi } from "../hooks";
import { DESCRIPTION_SEARCH, TITLE_SEARCH } from "../operations";
import { ErrorNotice } from "./ErrorNotice";
import { GenreSelect } from "./GenreSelect";
import { MovieCard, type MovieSummary } from "./MovieCard";

type Mode = "title" | "description";

interface Found {
  movies: MovieSummary[];
  total: number;
  text: string;
  mode: Mode;
  genre: string;
  /** Where the next page of a title search starts (null: no more). */
  next: string | null;
}

export function Search({ genres }: { genres: string[] }) {
  const api = useApi();
  const [text, setText] = useState("");
  const [mode, setMode] = useState<Mode>("title");
  const [genre, setGenre] = useState("");
  const [found, setFound] = useState<Found | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | undefined>(undefined);
  const [loading, setLoading] = useState(false);

  const run = async (more = false) => {
    const query = more && found ? found.text : text.trim();
    const within = more && found ? found.genre : genre;
    if (!query) {
      setProblem({ kind: "refused", message: "Type a title or a few words about a movie." });
      return;
    }
    setLoading(true);
    setProblem(undefined);
    let movies: MovieSummary[] = more && found ? found.movies : [];
    let total = 0;
    let next: string | null = null;
    const searchMode = more && found ? found.mode : mode;
    if (searchMode === "title") {
      const result = await api.run(TITLE_SEARCH, {
        search: query,
        genres: within ? [within] : null,
        after: more && found ? found.next : null,
      });
      if (result.problem) {
        setProblem(result.problem);
        setLoading(false);
        return; // keep what is shown; the notice says what went wrong
      }
      const page = result.data?.movies;
      movies = [...movies, ...(page?.edges.map((edge) => edge.node) ?? [])];
      total = page?.totalCount ?? 0;
      next = page?.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? null) : null;
    } else {
      const result = await api.run(DESCRIPTION_SEARCH, { query });
      if (result.problem) {
        setProblem(result.problem);
        setLoading(false);
        return;
      }
      movies = (result.data?.searchMovies ?? [])
        .map((hit) => hit.movie)
        .filter((movie) => !within || movie.genres.includes(within));
      total = movies.length;
    }
    setLoading(false);
    setFound({ movies, total, text: query, mode: searchMode, genre: within, next });
  };

  return (
    <section aria-labelledby="search-title" class="panel">
      <h2 id="search-title">Find movies</h2>
      <form
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          void run();
        }}
      >
        <div class="search-row">
          <label for="search-text" class="visually-hidden">
            {mode === "title" ? "Title" : "Describe the movie"}
          </label>
          <input
            id="search-text"
            type="search"
            value={text}
            placeholder={
              mode === "title" ? "A title, e.g. Toy Story" : "e.g. a heist in space with a robot"
            }
            onInput={(event) => setText(event.currentTarget.value)}
          />
          <button type="submit" disabled={loading}>
            Search
          </button>
        </div>
        <fieldset class="search-options">
          <legend class="visually-hidden">Search by</legend>
          <label>
            <input
              type="radio"
              name="mode"
              value="title"
              checked={mode === "title"}
              onChange={() => setMode("title")}
            />{" "}
            by title
          </label>
          <label>
            <input
              type="radio"
              name="mode"
              value="description"
              checked={mode === "description"}
              onChange={() => setMode("description")}
            />{" "}
            by description
          </label>
          <GenreSelect
            label="Genre"
            anyLabel="any"
            genres={genres}
            value={genre}
            onChange={setGenre}
          />
        </fieldset>
      </form>
      <ErrorNotice problem={problem} onRetry={() => void run()} />
      <div aria-live="polite" class="search-results">
        {loading && <p>Searching…</p>}
        {found && (
          <>
            <p>
              {found.movies.length === 0
                ? `Nothing found for “${found.text}”.`
                : `${found.total} movie${found.total === 1 ? "" : "s"} for “${found.text}”` +
                  (found.mode === "description" ? " (closest plots first)" : "") +
                  (found.movies.length < found.total ? `, first ${found.movies.length} shown` : "")}
            </p>
            <ul class="cards" aria-label="Search results">
              {found.movies.map((movie) => (
                <MovieCard key={movie.id} movie={movie} />
              ))}
            </ul>
            {found.next && (
              <button type="button" onClick={() => void run(true)}>
                Show more
              </button>
            )}
          </>
        )}
      </div>
    </section>
  );
}
