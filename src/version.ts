import pkg from "../package.json" with { type: "json" };

/** The release version, taken from package.json (and so embedded in the compiled binary). */
export const VERSION: string = pkg.version;
