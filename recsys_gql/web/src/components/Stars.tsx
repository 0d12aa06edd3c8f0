/**
 * Half-star rating: ten buttons (0.5 … 5), each a labelled, focusable half of a star, so a
 * rating is one click or Tab + Enter. The chosen value is `aria-pressed`.
 */
import { useState } from "preact/hooks";

export const STEPS = [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5];

interface Props {
  title: string;
  value: number | undefined;
  busy?: boolean;
  onRate: (value: number) => void;
}

export function starLabel(value: number): string {
  return `${value} star${value === 1 ? "" : "s"}`;
}

export function Stars({ title, value, busy = false, onRate }: Props) {
  const [hover, setHover] = useState<number | undefined>(undefined);
  const shown = hover ?? value ?? 0;
  return (
    <div
      class="stars"
      role="group"
      aria-label={`Your rating for ${title}`}
      onMouseLeave={() => setHover(undefined)}
    >
      {STEPS.map((step) => (
        <button
          key={step}
          type="button"
          class={`half ${step % 1 === 0 ? "right" : "left"} ${step <= shown ? "on" : ""}`}
          aria-label={`Rate ${title} ${starLabel(step)}`}
          aria-pressed={value === step}
          disabled={busy}
          onMouseEnter={() => setHover(step)}
          onFocus={() => setHover(step)}
          onBlur={() => setHover(undefined)}
          onClick={() => onRate(step)}
        >
          <span aria-hidden="true">★</span>
        </button>
      ))}
      <span class="stars-value">{value ? `${value}/5` : "not rated"}</span>
    </div>
  );
}
