/**
 * The Sendmail 8 milter protocol (versions 2 to 6), client side, as
 * Postfix speaks it: smtpd_milters and non_smtpd_milters parsing and
 * settings (config.ts), the wire format (protocol.ts), one milter's
 * conversation for one SMTP connection (client.ts), and the milters of a
 * connection together with the MTA's answers (chain.ts). The fake milter for
 * tests is lib/milter/_testing.ts.
 *
 * @module
 */

export {
  defaultActionReply,
  MILTER_REJECT,
  MILTER_TEMPFAIL,
  type MilterEdit,
  type MilterEomResult,
  type MilterNegotiated,
  type MilterReply,
  MilterSession,
  type MilterSessionOptions,
} from "./client.ts";
export { type EndOfMessage, type MacroLookup, MilterChain, type MilterVerdict } from "./chain.ts";
export {
  MACRO_PARAMETERS,
  MILTER_OVERRIDES,
  MILTER_PARAMETER_DEFAULTS,
  type MilterDefaultAction,
  type MilterEndpoint,
  type MilterEntry,
  type MilterOverride,
  type MilterSettings,
  parseMilterEndpoint,
  parseMilterList,
  resolveMilterSettings,
} from "./config.ts";
export {
  MilterError,
  type MilterFamily,
  type MilterStage,
  type MilterVersion,
} from "./protocol.ts";
