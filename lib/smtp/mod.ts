/**
 * SMTP wire protocol, shared by smtpd, the smtp/lmtp clients and the local
 * delivery agents: commands and replies, DATA decoding and dot-stuffing,
 * status errors. Pure code, no I/O; the state machines live in the daemons.
 */

export * from "./command.ts";
export * from "./data.ts";
export * from "./client_codec.ts";
export * from "./status.ts";
