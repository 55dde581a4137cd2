/**
 * Reads a delivery status notification the way a consumer that did not
 * write it would: Python's email library (the parser mail clients and list
 * software in Python use). Tests of bounce, delay and success notices use
 * it to check the structure, not just the text. Needs python3 (a peer:
 * callers check havePeer(PYTHON) first).
 *
 * @module
 */
import { run } from "./peers.ts";

export const PYTHON = "/usr/bin/python3";

/** What Python makes of a notice; DSN field values unfolded, white space runs as one space. */
export interface ParsedDsn {
  type: string;
  reportType: string | null;
  /** Names of the defects the parser found in the top-level message. */
  defects: string[];
  /** Content types of the top-level parts. */
  parts: string[];
  perMessage: Record<string, string> | null;
  recipients: Record<string, string>[];
  subject: string | null;
  to: string | null;
  autoSubmitted: string | null;
}

const PARSER = `
import email, json, sys
from email import policy
def fields(block):
  # Unfolded (RFC 5322 2.2.3), runs of white space read as one.
  return {k: " ".join(str(v).split()) for k, v in block.items()}
msg = email.message_from_binary_file(sys.stdin.buffer, policy=policy.compat32)
parts = msg.get_payload() if msg.is_multipart() else []
status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
blocks = status[0].get_payload() if status else []
print(json.dumps({
  "type": msg.get_content_type(),
  "reportType": msg.get_param("report-type"),
  "defects": [type(d).__name__ for d in msg.defects],
  "parts": [p.get_content_type() for p in parts],
  "perMessage": fields(blocks[0]) if blocks else None,
  "recipients": [fields(b) for b in blocks[1:]],
  "subject": msg["Subject"],
  "to": msg["To"],
  "autoSubmitted": msg["Auto-Submitted"],
}))
`;

/** Parses `data` (the message as the sink got it). @throws when python3 cannot. */
export async function parseDsn(data: string): Promise<ParsedDsn> {
  const r = await run(PYTHON, ["-c", PARSER], { stdin: data });
  if (r.code !== 0) throw new Error(`python3 could not parse the notice: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
