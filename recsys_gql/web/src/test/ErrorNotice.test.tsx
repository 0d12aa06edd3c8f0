import { act, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ErrorNotice } from "../components/ErrorNotice";

afterEach(() => vi.useRealTimers());

describe("ErrorNotice", () => {
  it("counts down a throttled request and then allows a retry", () => {
    vi.useFakeTimers();
    const onRetry = vi.fn();
    render(
      <ErrorNotice
        problem={{ kind: "rate-limited", retryAfter: 2, message: "Too many requests" }}
        onRetry={onRetry}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("You can retry in 2 s.");
    const button = screen.getByRole("button", { name: "Try again" }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    act(() => {
      vi.advanceTimersByTime(2100);
    });
    expect(screen.getByRole("alert").textContent).toContain("You can retry now.");
    expect(button.disabled).toBe(false);
  });

  it("renders nothing without a problem", () => {
    const { container } = render(<ErrorNotice problem={undefined} />);
    expect(container.textContent).toBe("");
  });
});
