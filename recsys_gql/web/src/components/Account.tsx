/** Sign up in one click (the token is kept in localStorage), paste a token, or sign out. */
import { useState } from "preact/hooks";
import type { Problem } from "../client";
import { ErrorNotice } from "./ErrorNotice";

interface Props {
  userId: number | null;
  ratingsCount: number;
  token: string | null;
  busy: boolean;
  problem: Problem | undefined;
  onSignUp: () => void;
  onUseToken: (token: string) => void;
  onSignOut: () => void;
}

export function Account(props: Props) {
  const [pasted, setPasted] = useState("");
  if (props.userId !== null) {
    return (
      <div class="account">
        <p>
          Signed in as <strong>user {props.userId}</strong> · {props.ratingsCount} rating
          {props.ratingsCount === 1 ? "" : "s"}
        </p>
        <details>
          <summary>Your token</summary>
          <p class="hint">Keep it to rate as this user elsewhere (sent as a Bearer token).</p>
          <code class="token">{props.token}</code>
        </details>
        <button type="button" class="small" onClick={props.onSignOut}>
          Sign out
        </button>
      </div>
    );
  }
  return (
    <div class="account">
      <button type="button" class="primary" onClick={props.onSignUp} disabled={props.busy}>
        Sign up in one click
      </button>
      <form
        class="token-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (pasted.trim()) props.onUseToken(pasted.trim());
        }}
      >
        <label for="token-input">or paste a token</label>
        <input
          id="token-input"
          type="password"
          autocomplete="off"
          value={pasted}
          onInput={(event) => setPasted(event.currentTarget.value)}
        />
        <button type="submit" disabled={props.busy || !pasted.trim()}>
          Use token
        </button>
      </form>
      <ErrorNotice problem={props.problem} />
    </div>
  );
}
