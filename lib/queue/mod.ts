/** Queue files and queue directories: see format.ts and store.ts. */
export * from "./format.ts";
export * from "./store.ts";
