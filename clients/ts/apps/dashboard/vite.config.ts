import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Built into dev mode (dev/build.rs passes --outDir); `npm run dev -w
// @portfolio-stream/dashboard` serves it with hot reload against a running
// `portfolio-dev` on 127.0.0.1:8080 (GATEWAY to point elsewhere).
const gateway = process.env.GATEWAY ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { target: "es2022", sourcemap: false, assetsDir: "assets" },
  server: {
    proxy: {
      "/api": gateway,
      "/dev": gateway,
      "/ws": { target: gateway.replace(/^http/, "ws"), ws: true },
    },
  },
});
