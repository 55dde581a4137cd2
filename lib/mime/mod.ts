/**
 * Message format helpers shared by cleanup, bounce and the delivery agents:
 * header section splitting, header lookup and formatting, dates, xtext.
 * MIME structure for content checks (scan.ts).
 */

export * from "./headers.ts";
export * from "./scan.ts";
