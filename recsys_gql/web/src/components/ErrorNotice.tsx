/** A problem shown where it happened, with a way out (retry, or the time to wait). */
import { useEffect, useMemo, useState } from "preact/hooks";
import type { Problem } from "../client";

interface Props {
  problem: Problem | undefined;
  onRetry?: () => void;
}

export function ErrorNotice({ problem, onRetry }: Props) {
  const wait = problem?.kind === "rate-limited" ? problem.retryAfter : 0;
  // the deadline is fixed when the problem arrives; `now` ticks once a second until it passes
  const deadline = useMemo(() => Date.now() + wait * 1000, [problem, wait]);
  const [now, setNow] = useState(() => Date.now());
  const left = Math.min(wait, Math.max(0, Math.ceil((deadline - now) / 1000)));

  useEffect(() => {
    setNow(Date.now());
    if (wait <= 0) return;
    const timer = window.setInterval(() => {
      const tick = Date.now();
      setNow(tick);
      if (tick >= deadline) window.clearInterval(timer);
    }, 1000);
    return () => window.clearInterval(timer);
  }, [deadline, wait]);

  if (!problem) return null;
  return (
    <div class={`notice notice-${problem.kind}`} role="alert">
      <p>{problem.message}</p>
      {problem.kind === "rate-limited" && (
        <p class="retry-when">
          {left > 0 ? `You can retry in ${left} s.` : "You can retry now."}
        </p>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry} disabled={left > 0}>
          Try again
        </button>
      )}
    </div>
  );
}
