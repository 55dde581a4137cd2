/**
 * What cleanup reads from main.cf for address rewriting, virtual alias
 * expansion, content checks and automatic BCC, with every table opened
 * once per cleanup process (not per message) through lib/maps. An empty
 * parameter opens nothing, so no lookup is ever made for it (an empty
 * Maps answers without asking anything); {@link CleanupTables.idle} says
 * whether any table is set at all.
 *
 * Parameters: canonical_maps, sender_canonical_maps,
 * recipient_canonical_maps (""), canonical_classes (envelope_sender,
 * envelope_recipient, header_sender, header_recipient),
 * sender_canonical_classes (envelope_sender, header_sender),
 * recipient_canonical_classes (envelope_recipient, header_recipient),
 * masquerade_domains, masquerade_exceptions (""), masquerade_classes
 * (envelope_sender, header_sender, header_recipient),
 * propagate_unmatched_extensions (canonical, virtual), virtual_alias_maps
 * ($virtual_maps), virtual_alias_expansion_limit,
 * virtual_alias_recursion_limit, virtual_alias_address_length_limit
 * (1000), header_checks, body_checks (""), mime_header_checks,
 * nested_header_checks ($header_checks), body_checks_size_limit (51200),
 * always_bcc, sender_bcc_maps, recipient_bcc_maps (""),
 * recipient_delimiter, double_bounce_sender, myorigin, mydestination,
 * inet_interfaces, postwarden_dkim_signing_table (dkim.ts).
 *
 * @module
 */
import type { Config } from "../../lib/config/mod.ts";
import { type AddressSearchOptions, DictError, Maps, splitMapList } from "../../lib/maps/mod.ts";
import type { MapsOpener } from "../../lib/service/mod.ts";
import type { CheckTables } from "./checks.ts";
import { type AddressClasses, type Masquerade, parseClasses } from "./rewrite.ts";
import type { ExpansionLimits } from "./virtual.ts";

/** Every table and setting cleanup's rewriting needs, for the life of the process. */
export class CleanupTables {
  private constructor(
    readonly canonical: Maps,
    readonly senderCanonical: Maps,
    readonly recipientCanonical: Maps,
    readonly virtual: Maps,
    readonly senderBcc: Maps,
    readonly recipientBcc: Maps,
    readonly checks: CheckTables,
    readonly classes: {
      canonical: AddressClasses;
      sender: AddressClasses;
      recipient: AddressClasses;
      masquerade: AddressClasses;
    },
    readonly masq: Masquerade,
    /** masquerade_exceptions tables (type:name items): a user name found there is not masqueraded. */
    readonly masqExceptionMaps: Maps,
    readonly propagate: { canonical: boolean; virtual: boolean },
    readonly limits: ExpansionLimits,
    readonly alwaysBcc: string,
    readonly search: AddressSearchOptions,
    readonly bodyChecksSizeLimit: number,
    /** No checks at all: for internal mail (Postfix's internal_mail_filter_classes empty). */
    readonly noChecks: CheckTables,
    /** inet_interfaces, for which SMTP clients count as local (header rewriting). */
    readonly inetInterfaces: string[],
    /** postwarden_dkim_signing_table (dkim.ts). */
    readonly dkimSigning: Maps,
  ) {}

  /**
   * Opens every table the configuration names.
   *
   * @throws {DictError} when a table cannot be opened or a setting is bad
   *   (kind "config"); nothing stays open then.
   */
  static async open(config: Config, openMaps: MapsOpener): Promise<CleanupTables> {
    const opened: Maps[] = [];
    const open = async (name: string, value = config.str(name)) => {
      const m = await openMaps(name, value);
      opened.push(m);
      return m;
    };
    try {
      const classes = (name: string) => {
        try {
          return parseClasses(name, config.list(name));
        } catch (e) {
          throw new DictError((e as Error).message, "config");
        }
      };
      // masquerade_exceptions: user names, and tables whose keys are user names.
      const exceptions = splitMapList(config.str("masquerade_exceptions"));
      const exceptionMaps = await open(
        "masquerade_exceptions",
        exceptions.filter((e) => e.includes(":")).join(" "),
      );
      const propagate = new Set(
        config.list("propagate_unmatched_extensions").map((w) => w.toLowerCase()),
      );
      const origin = config.str("myorigin").toLowerCase();
      const none = await Maps.open("none", "");
      const destinations = new Set(
        config.list("mydestination").map((d) => d.toLowerCase().replace(/\.$/, "")),
      );
      const t = new CleanupTables(
        await open("canonical_maps"),
        await open("sender_canonical_maps"),
        await open("recipient_canonical_maps"),
        await open("virtual_alias_maps"),
        await open("sender_bcc_maps"),
        await open("recipient_bcc_maps"),
        {
          header: await open("header_checks"),
          mime: await open("mime_header_checks"),
          nested: await open("nested_header_checks"),
          body: await open("body_checks"),
        },
        {
          canonical: classes("canonical_classes"),
          sender: classes("sender_canonical_classes"),
          recipient: classes("recipient_canonical_classes"),
          masquerade: classes("masquerade_classes"),
        },
        {
          domains: config.list("masquerade_domains"),
          exceptions: new Set(
            exceptions.filter((e) => !e.includes(":")).map((e) => e.toLowerCase()),
          ),
        },
        exceptionMaps,
        { canonical: propagate.has("canonical"), virtual: propagate.has("virtual") },
        {
          expansion: config.int("virtual_alias_expansion_limit"),
          recursion: config.int("virtual_alias_recursion_limit"),
          addressLength: config.int("virtual_alias_address_length_limit"),
        },
        config.str("always_bcc").trim(),
        {
          delimiters: config.str("recipient_delimiter"),
          doubleBounceSender: config.str("double_bounce_sender"),
          // The bare user is tried for $myorigin and $mydestination domains
          // (Postfix also counts $inet_interfaces and $proxy_interfaces).
          isLocal: (domain) => {
            const d = domain.toLowerCase().replace(/\.$/, "");
            return d === origin || destinations.has(d);
          },
        },
        config.int("body_checks_size_limit"),
        { header: none, mime: none, nested: none, body: none },
        config.list("inet_interfaces"),
        await open("postwarden_dkim_signing_table"),
      );
      return t;
    } catch (e) {
      await Promise.all(opened.map((m) => m.close()));
      throw e;
    }
  }

  /** True when no table, masquerade domain or always_bcc is set: nothing to do per message. */
  get idle(): boolean {
    return this.canonical.empty && this.senderCanonical.empty && this.recipientCanonical.empty &&
      this.virtual.empty && this.senderBcc.empty && this.recipientBcc.empty &&
      this.checks.header.empty && this.checks.mime.empty && this.checks.nested.empty &&
      this.checks.body.empty && this.masq.domains.length === 0 && this.alwaysBcc === "" &&
      this.masqExceptionMaps.empty;
  }

  /** Closes every table. */
  async close(): Promise<void> {
    await Promise.all(
      [
        this.canonical,
        this.senderCanonical,
        this.recipientCanonical,
        this.virtual,
        this.senderBcc,
        this.recipientBcc,
        this.masqExceptionMaps,
        this.checks.header,
        this.checks.mime,
        this.checks.nested,
        this.checks.body,
        this.dkimSigning,
      ].map((m) => m.close()),
    );
  }
}
