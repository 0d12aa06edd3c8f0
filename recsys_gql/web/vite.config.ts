import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// Relative asset URLs: the page works wherever the server mounts it.
export default defineConfig({
  base: "./",
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
