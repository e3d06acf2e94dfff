import { defineConfig } from "vitest/config";

// Tauri serves ui/dist from its own protocol; no dev server is needed for a build.
export default defineConfig({
  clearScreen: false,
  build: {
    target: "safari15",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    environment: "node",
  },
});
