import { fireEvent, render, screen } from "@testing-library/preact";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { Stars } from "../components/Stars";

describe("Stars", () => {
  it("offers ten labelled half-star buttons and rates on click", () => {
    const onRate = vi.fn();
    render(<Stars title="Up" value={undefined} onRate={onRate} />);
    const buttons = screen.getAllByRole("button");
    expect(buttons).toHaveLength(10);
    expect(buttons[0].getAttribute("aria-label")).toBe("Rate Up 0.5 stars");
    expect(buttons[9].getAttribute("aria-label")).toBe("Rate Up 5 stars");
    fireEvent.click(screen.getByRole("button", { name: "Rate Up 3.5 stars" }));
    expect(onRate).toHaveBeenCalledWith(3.5);
    expect(screen.getByText("not rated")).toBeTruthy();
  });

  it("is usable from the keyboard and marks the current value", async () => {
    const user = userEvent.setup();
    const onRate = vi.fn();
    render(<Stars title="Up" value={4} onRate={onRate} />);
    expect(screen.getByRole("button", { name: "Rate Up 4 stars" }).getAttribute("aria-pressed")).toBe(
      "true",
    );
    expect(screen.getByText("4/5")).toBeTruthy();
    await user.tab();
    await user.tab();
    await user.keyboard("{Enter}");
    expect(onRate).toHaveBeenCalledWith(1);
  });
});
