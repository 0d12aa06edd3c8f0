/**
 * "For you": the viewer's recommendations, with each one's explanation and its two arm
 * scores, an α slider and genre chips. With a live client the list is a subscription the
 * server updates after every rating (no polling, no new request); without one it is asked
 * again over HTTP after every saved rating.
 */
import { useEffect, useState } from "preact/hooks";
import { useLive, useQuery, useSubscription } from "../hooks";
import { FOR_YOU, FOR_YOU_LIVE } from "../operations";
import { useSession } from "../session";
import { ErrorNotice } from "./ErrorNotice";
import { MovieCard } from "./MovieCard";

export const FOR_YOU_COUNT = 12;

/** How long "For you" shows "Updating…" after a rating at most, waiting for the push. */
const PUSH_WAIT_MS = 5000;

function percent(value: number): string {
  return `${Math.round(Math.max(0, Math.min(1, value)) * 100)}%`;
}

export function ScoreBar({ collab, content }: { collab: number; content: number }) {
  const label = `people like you ${percent(collab)}, plots you like ${percent(content)}`;
  return (
    <div class="scorebar" role="img" aria-label={label} title={label}>
      <span class="bar-row">
        <span class="bar-name">people</span>
        <span class="bar">
          <span class="fill collab" style={{ width: percent(collab) }} />
        </span>
      </span>
      <span class="bar-row">
        <span class="bar-name">plots</span>
        <span class="bar">
          <span class="fill content" style={{ width: percent(content) }} />
        </span>
      </span>
    </div>
  );
}

export function AlphaSlider({
  alpha,
  onCommit,
}: {
  alpha: number | null;
  onCommit: (value: number | null) => void;
}) {
  const [shown, setShown] = useState(alpha ?? 0.5);
  useEffect(() => setShown(alpha ?? 0.5), [alpha]);
  return (
    <div class="alpha">
      <label for="alpha">
        Blend: <span aria-hidden="true">plots you like ← → people like you</span>
      </label>
      <input
        id="alpha"
        type="range"
        min={0}
        max={1}
        step={0.1}
        value={shown}
        aria-valuetext={`${Math.round(shown * 100)}% people like you, ${Math.round((1 - shown) * 100)}% plots you like`}
        onInput={(event) => setShown(Number(event.currentTarget.value))}
        onChange={(event) => onCommit(Number(event.currentTarget.value))}
      />
      <output for="alpha">{alpha === null ? "auto" : `α = ${alpha.toFixed(1)}`}</output>
      {alpha !== null && (
        <button type="button" class="small" onClick={() => onCommit(null)}>
          Auto
        </button>
      )}
    </div>
  );
}

export function GenreChips({
  genres,
  chosen,
  onToggle,
  label,
}: {
  genres: string[];
  chosen: ReadonlySet<string>;
  onToggle: (genre: string) => void;
  label: string;
}) {
  return (
    <div class="chips" role="group" aria-label={label}>
      {genres.map((genre) => (
        <button
          key={genre}
          type="button"
          class="chip"
          aria-pressed={chosen.has(genre)}
          onClick={() => onToggle(genre)}
        >
          {genre}
        </button>
      ))}
    </div>
  );
}

export function ForYou({ genres }: { genres: string[] }) {
  const session = useSession();
  const [alpha, setAlpha] = useState<number | null>(null);
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const picked = [...chosen].sort();
  const variables = {
    first: FOR_YOU_COUNT,
    alpha,
    genres: picked.length ? picked : null,
  };
  const live = useLive() !== null;
  const signedOut = session.userId === null;
  // Live, the server pushes each new list: the key does not change with a rating.
  const liveKey = JSON.stringify([variables, session.userId]);
  const pushed = useSubscription(FOR_YOU_LIVE, variables, liveKey, signedOut || !live);
  const key = JSON.stringify([variables, session.userId, session.version]);
  const asked = useQuery(FOR_YOU, variables, key, signedOut || live);
  // After a rating the shown list is the one before it until the server pushes the next
  // (or, should that push have raced ahead of the rating's answer, for at most a few seconds).
  const [pushedFor, setPushedFor] = useState(session.version);
  useEffect(() => setPushedFor(session.version), [pushed.data]);
  useEffect(() => {
    const settle = window.setTimeout(() => setPushedFor(session.version), PUSH_WAIT_MS);
    return () => window.clearTimeout(settle);
  }, [session.version]);
  const { problem, reload } = live ? pushed : asked;
  const loading = live ? pushed.loading || pushedFor < session.version : asked.loading;
  const items = live
    ? (pushed.data?.recommendationsUpdated ?? [])
    : (asked.data?.viewer?.recommendations ?? []);
  const count = live ? session.ratings.size : (asked.data?.viewer?.ratingsCount ?? session.ratings.size);
  const toggle = (genre: string) => {
    const next = new Set(chosen);
    if (next.has(genre)) next.delete(genre);
    else next.add(genre);
    setChosen(next);
  };

  if (session.userId === null) {
    return (
      <section aria-labelledby="for-you-title" class="panel">
        <h2 id="for-you-title">For you</h2>
        <p>Sign up (one click, above) and rate a few movies: your recommendations appear here.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="for-you-title" class="panel" aria-busy={loading}>
      <h2 id="for-you-title">For you</h2>
      {count === 0 ? (
        <p>These are popular picks. Rate movies you know and they become yours.</p>
      ) : (
        <p>
          From your {count} rating{count === 1 ? "" : "s"}. {loading ? "Updating…" : ""}
        </p>
      )}
      <AlphaSlider alpha={alpha} onCommit={setAlpha} />
      <GenreChips genres={genres} chosen={chosen} onToggle={toggle} label="Only these genres" />
      <ErrorNotice problem={problem} onRetry={reload} />
      {!loading && !problem && items.length === 0 && <p>Nothing matches these genres yet.</p>}
      <ol class="cards" aria-label="Recommended movies">
        {items.map((item) => (
          <MovieCard key={item.movie.id} movie={item.movie}>
            {item.explanation.because.length === 0 ? (
              <p class="why">{item.explanation.summary}</p>
            ) : (
              <p class="because" title={item.explanation.summary}>
                Because you rated{" "}
                {item.explanation.because.map((movie, index) => (
                  <span key={movie.id}>
                    {index > 0 ? ", " : ""}
                    <button type="button" class="link" onClick={() => session.openMovie(movie.id)}>
                      {movie.title}
                    </button>
                  </span>
                ))}
              </p>
            )}
            <ScoreBar collab={item.collabScore} content={item.contentScore} />
          </MovieCard>
        ))}
      </ol>
    </section>
  );
}
