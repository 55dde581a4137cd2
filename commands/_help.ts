/**
 * `--help` for every command: what it does and each option it takes, in
 * the words of the command's module comment (which stays the full manual).
 * Postfix's programs have no --help (they print a usage line); these keep
 * that usage line for a bad option and add this for the first argument
 * `--help`, which exits 0. commands/_help_test.ts checks that every option
 * letter a command's usage line names is explained here.
 */

/** One command's help: the synopsis lines, a sentence, the options. */
interface Help {
  synopsis: string[];
  summary: string;
  options: [string, string][];
}

const CONFIG: [string, string] = [
  "-c DIR",
  "configuration directory (else MAIL_CONFIG, else the repository's conf/)",
];
const VERBOSE: [string, string] = ["-v", "accepted for Postfix compatibility; no effect"];

const MAP_OPTIONS: [string, string][] = [
  CONFIG,
  [
    "-q KEY",
    "print KEY's value from the first table that has it (exit 1 when none); -q - reads keys from stdin",
  ],
  ["-s", "print every entry of the first table"],
  ["-d KEY", "delete KEY from each table (-d - reads keys from stdin)"],
  ["-i", 'add "key value" lines from standard input'],
  ["-f", "do not fold keys to lower case"],
  ["-r", "on a duplicate key keep the last value"],
  ["-w", "on a duplicate key keep the first, silently"],
  ["-N", "accepted (the index stores lengths; NUL termination has no meaning)"],
  ["-n", "accepted (as -N)"],
  ["-o", "do not give the index the source file's owner (root only)"],
  ["-p", "do not copy the source's group/other read bits to the index"],
  VERBOSE,
];

const HELP: Record<string, Help> = {
  postwarden: {
    synopsis: [
      "postwarden [-c DIR] start|start-fg|stop|reload|status|check|audit",
      "postwarden [-c DIR] test [--explain] [--format human|tap|junit] [PATH...]",
      "postwarden [-c DIR] test --record OUT DIALOG",
    ],
    summary: "Start, stop and inspect a Postwarden instance, like postfix(1).",
    options: [
      CONFIG,
      ["start", "check the configuration and run master in the background"],
      ["start-fg", "the same in the foreground, logging to stderr too (Ctrl-C stops)"],
      ["stop", "stop master and every daemon"],
      ["reload", "re-read main.cf and master.cf; running sessions finish on the old daemons"],
      ["status", "say whether master runs, and its pid"],
      ["check", "check main.cf, master.cf, tables and the queue without starting"],
      ["audit", "probe each daemon's sandbox live: what it can and cannot reach"],
      ["test", "run the configuration's tests (DIR/tests/*.dialog) in an ephemeral instance"],
    ],
  },
  postqueue: {
    synopsis: ["postqueue [-c DIR] -p | -j | -f | -i ID | -s SITE"],
    summary: "List the mail queue or ask for deferred mail to be retried now, like postqueue(1).",
    options: [
      CONFIG,
      ["-p", "list the queue as mailq(1) does"],
      ["-j", "list the queue as JSON, one message a line (Postfix 3.5+ format)"],
      ["-f", "ask qmgr to retry deferred mail now"],
      ["-i ID", "ask qmgr to retry that deferred message now"],
      ["-s SITE", "ask qmgr to retry the deferred mail for SITE now (SITE in fast_flush_domains)"],
      VERBOSE,
    ],
  },
  postsuper: {
    synopsis: [
      "postsuper [-psS] [-c DIR] [-d ID] [-e ID] [-f ID] [-h ID] [-H ID] [-r ID] [QUEUE...]",
    ],
    summary:
      "Delete, hold, release or requeue queued mail, purge temporary files and repair the queue, like postsuper(1). ID is a queue id, ALL, or - (ids from stdin). No option: -p -s.",
    options: [
      CONFIG,
      ["-d ID", "delete the message"],
      ["-e ID", "return the message to its sender at its next delivery attempt"],
      ["-f ID", "as -e, and release it from hold"],
      ["-h ID", "put the message on hold"],
      ["-H ID", "release the message from hold"],
      ["-r ID", "requeue the message (retry now, deferral log removed)"],
      ["-p", "purge temporary files older than a day (left by crashes)"],
      [
        "-s",
        "structure check and repair: bogus names, damaged files to corrupt/, names fixed to their queue id, modes",
      ],
      ["-S", "as -s"],
      [
        "QUEUE",
        "queues searched: maildrop incoming active deferred hold corrupt (and defer for -p/-s)",
      ],
      VERBOSE,
    ],
  },
  qshape: {
    synopsis: [
      "qshape [-s] [-p] [-m MIN] [-b COUNT] [-t MINUTES] [-l] [-w WIDTH] [-N COUNT] [-n COUNT]",
      "[-c DIR] [QUEUE...]",
    ],
    summary:
      "Show the queue's distribution by domain and age, like qshape(1); QUEUE: incoming and active by default, names relative to queue_directory or absolute paths.",
    options: [
      CONFIG,
      ["-s", "count sender domains instead of recipient domains"],
      ["-p", "also count parent domains (.example.com), shown with at least MIN subdomains"],
      ["-m MIN", "subdomains a parent domain needs to be shown (default 5)"],
      ["-b COUNT", "number of age buckets (default 10)"],
      ["-t MINUTES", "age limit of the first bucket (default 5); each next one doubles"],
      ["-l", "linear buckets: each one MINUTES older than the previous"],
      ["-w WIDTH", "terminal width, above 80 (default 80)"],
      ["-N COUNT", "on a terminal, show interim results every COUNT messages (default 1000)"],
      ["-n COUNT", "on a terminal, show only the top COUNT domains (default 20)"],
      ["-h", "print the usage text"],
    ],
  },
  postcat: {
    synopsis: ["postcat [-behv] [-c DIR] FILE...", "postcat [-behv] [-c DIR] -q ID..."],
    summary: "Show queue files in human-readable form, like postcat(1).",
    options: [
      CONFIG,
      ["-q", "the operands are queue ids, looked up in the queue"],
      ["-e", "show the envelope"],
      ["-h", "show the message header"],
      ["-b", "show the message body (no -e/-h/-b: all three)"],
      VERBOSE,
    ],
  },
  postmap: {
    synopsis: ["postmap [-Nfinoprsvw] [-c DIR] [-d KEY] [-q KEY] [TYPE:]FILE..."],
    summary: "Build and query lookup tables, like postmap(1).",
    options: MAP_OPTIONS,
  },
  postalias: {
    synopsis: ["postalias [-Nfinoprsvw] [-c DIR] [-d KEY] [-q KEY] [TYPE:]FILE..."],
    summary: "Build and query alias tables, like postalias(1).",
    options: MAP_OPTIONS,
  },
  newaliases: {
    synopsis: ["newaliases [-c DIR]"],
    summary: "Rebuild the alias tables that alias_database names, like newaliases(1).",
    options: [CONFIG],
  },
  postconf: {
    synopsis: [
      "postconf [-c DIR] [-d | -n] [-x] [-h] [NAME...]",
      "postconf [-c DIR] -e NAME=VALUE...",
      "postconf [-c DIR] -X NAME...",
      "postconf [-c DIR] -M [NAME[/TYPE]...]",
      "postconf [-c DIR] -b | -t [TEMPLATE_FILE]",
    ],
    summary: "Show or change main.cf and master.cf, like postconf(1).",
    options: [
      CONFIG,
      ["-d", "show default values"],
      ["-n", "show only the parameters main.cf sets"],
      ["-x", "expand $name in values"],
      ["-h", 'show values without the "name = "'],
      ["-e", "edit main.cf: set NAME=VALUE"],
      ["-X", "edit main.cf: remove NAME"],
      ["-M", "show master.cf services"],
      ["-t", "show the bounce templates (TEMPLATE_FILE, bounce_template_file or built-in)"],
      ["-b", "show the bounce templates' text with $name expanded"],
    ],
  },
  sendmail: {
    synopsis: [
      "sendmail [-t] [-i] [-f SENDER] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-c DIR] [RECIPIENT...]",
      "sendmail -bv [-f SENDER] [-c DIR] RECIPIENT...",
      "sendmail -bp | -q | -qRSITE | -qIID | -bi | -I | -bs | -bh",
    ],
    summary:
      "Submit a message read from standard input, like Postfix's sendmail(1); mailq is sendmail -bp. Every fatal error exits 75, as Postfix's.",
    options: [
      CONFIG,
      ["-C DIR", "as -c"],
      ["-t", "also take recipients from To:, Cc: and Bcc: (Bcc: is removed; -N applies to them)"],
      ["-i", 'a line with a single "." does not end the message (also -oi)'],
      ["-f SENDER", "envelope sender (else the invoking user)"],
      ["-r SENDER", "as -f (obsolete)"],
      ["-F NAME", "full name for the From: header cleanup adds"],
      ["-N DSN", "delivery status notifications: never, or success,delay,failure"],
      ["-R RET", "what a bounce returns: full or hdrs"],
      ["-V ENVID", "DSN envelope id"],
      ["-bm", "read and submit a message (the default)"],
      ["-bp", "list the queue (as postqueue -p)"],
      ["-q", "retry deferred mail now (as postqueue -f); -q30m and other intervals do nothing"],
      ["-qRSITE", "retry the deferred mail for SITE now (as postqueue -s SITE)"],
      ["-qIID", "retry that deferred message now (as postqueue -i ID)"],
      ["-bi -I", "rebuild the alias databases (as newaliases)"],
      ["-bs", "speak SMTP on standard input and output; mail goes through the maildrop"],
      [
        "-bv",
        "verify the recipients: nothing is delivered; the sender is mailed a report of what " +
        "delivery would do (standard input is not read)",
      ],
      ["-bh -bH", "do nothing, as Postfix"],
      [
        "-bd -bl -n -X",
        "not supported (a fatal error): start with postwarden start",
      ],
      ["-A -B -e -G -h -L -m -O -o -p -U -v -x", "accepted and ignored, as Postfix does"],
    ],
  },
};

/** The help text of a command, or null for a command without one. */
export function helpText(command: string): string | null {
  const h = Object.hasOwn(HELP, command) ? HELP[command] : undefined;
  if (!h) return null;
  // Long option lists go on a line of their own, not into the column's width.
  const short = h.options.filter(([o]) => o.length <= 12);
  const width = Math.max(...short.map(([o]) => o.length));
  return [
    ...h.synopsis.map((s, i) => `${i === 0 ? "usage: " : "       "}${s}`),
    "",
    h.summary,
    "",
    ...h.options.map(([o, d]) =>
      o.length <= width ? `  ${o.padEnd(width)}  ${d}` : `  ${o}\n  ${"".padEnd(width)}  ${d}`
    ),
    "",
  ].join("\n");
}

/**
 * When the first argument is --help: prints the command's help on stdout
 * and returns true (the caller exits 0).
 */
export function printHelpIfAsked(command: string, args: readonly string[]): boolean {
  if (args[0] !== "--help") return false;
  const text = helpText(command);
  if (text === null) return false;
  console.log(text);
  return true;
}
