import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [react()],
  build: {
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      "/api": { target: "http://localhost:8000", changeOrigin: false },
      "/media": { target: "http://localhost:8000" },
    },
  },
  test: {
    // DOM only where a test renders (// @vitest-environment jsdom): faster.
    environment: "node",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
