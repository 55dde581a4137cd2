/**
 * Configuration library: Postfix-compatible main.cf and master.cf parsing,
 * parameter expansion, the one parameter table, and typed access to values.
 * Everything here is pure except loadConfig (reads main.cf) and
 * configDirFrom (may read the current directory).
 *
 * @example
 * ```ts
 * const cfg = await loadConfig(configDirFrom({}, { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") }));
 * const limit = cfg.size("message_size_limit");
 * ```
 *
 * @module
 */

export { ConfigError } from "./errors.ts";
export { PARAMS, type ParamSpec, type ParamType, type Support } from "./params.ts";
export { POSTFIX_DEFAULTS, POSTFIX_NAMES } from "./postfix_names.ts";
export {
  type Config,
  configDirFrom,
  type ConfigOptions,
  configPath,
  loadConfig,
  makeConfig,
  namedFiles,
} from "./config.ts";
export { editMainCf, parseAssignment, parseMainCf } from "./main_cf.ts";
export { expand, type ExpandOptions, type Lookup, referencedNames } from "./expand.ts";
export { formatMasterService, type MasterService, parseMasterCf } from "./master_cf.ts";
export {
  type ConfigProblem,
  configProblems,
  overrideProblems,
  validateConfig,
} from "./validate.ts";
export {
  matchNetworkList,
  type NetworkItem,
  type NetworkList,
  parseIp,
  parseNetworkList,
} from "./network_list.ts";
export {
  addressQuery,
  canRefuseRelay,
  DNSXL_RESTRICTIONS,
  dnsxlArgumentProblem,
  IMPLEMENTED_RESTRICTIONS,
  type OctetMatch,
  OPEN_RELAY_MESSAGE,
  parseDnsxlFilter,
  RESTRICTION_LISTS,
  restrictionItems,
  TABLE_RESTRICTIONS,
  unsupportedRestrictions,
} from "./restrictions.ts";
export {
  CHECK_POLICY_SERVICE,
  parsePolicyService,
  type PolicyEndpoint,
  type PolicyService,
  PolicyServiceError,
  policyServicesOf,
} from "./policy_service.ts";
export {
  SASL_SECURITY_OPTIONS,
  SASL_TYPES,
  SaslConfigError,
  type SaslEndpoint,
  saslEndpoint,
  saslProblems,
  saslSecurityOptions,
} from "./sasl.ts";
