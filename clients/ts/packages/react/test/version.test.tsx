// Each test project (vitest.config.ts) runs the hooks' tests on the React
// it names: 19 (the dashboard's) and 18.
import { version } from "react";
import { version as domVersion } from "react-dom";
import { describe, expect, it } from "vitest";

describe("React", () => {
  it("is the version this test project runs on", () => {
    expect(version.split(".")[0]).toBe(process.env.EXPECT_REACT);
    expect(domVersion).toBe(version);
  });
});
