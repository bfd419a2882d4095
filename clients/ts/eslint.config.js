import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ["**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.es2022 } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // The core runs in browsers, React Native and Node: no DOM globals.
    files: ["packages/client/src/**/*.ts"],
    rules: {
      "no-restricted-globals": ["error", "window", "document", "location", "navigator", "localStorage"],
    },
  },
  {
    files: ["packages/react/**/*.{ts,tsx}", "apps/dashboard/**/*.{ts,tsx}"],
    plugins: { "react-hooks": reactHooks },
    rules: reactHooks.configs.recommended.rules,
  },
  {
    files: ["apps/dashboard/**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ["**/test/**/*.{ts,tsx}", "scripts/**/*.mjs", "*.config.{ts,js}"],
    languageOptions: { globals: { ...globals.node } },
  },
);
