/**
 * Message format helpers shared by cleanup, bounce and the delivery agents:
 * header section splitting, header lookup and formatting, dates, xtext.
 * No MIME structure parsing yet.
 */

export * from "./headers.ts";
