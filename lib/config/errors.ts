/**
 * The error type of the configuration library. Its message says which file
 * and parameter were wrong and how, ready to print after "fatal: ".
 *
 * @module
 */

/** A main.cf or master.cf problem that stops the program reading it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}
