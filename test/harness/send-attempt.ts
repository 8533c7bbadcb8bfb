import { SmtpTestClient, sampleMessage } from './smtp-client.js';

/**
 * Tries to send one message on a fresh connection, as a client retrying
 * later would. Resolves to the reply that decided it: MAIL FROM's when that
 * was refused, else the reply to the final dot (`250 ...` or a refusal).
 */
export async function attemptMessage(port: number, sender: string, recipients: readonly string[] = ['postmaster@localhost']): Promise<string> {
  const client = await SmtpTestClient.ready(port);
  try {
    const mail = await client.command(`MAIL FROM:<${sender}>`, /^\d{3} /);
    if (mail.code !== 250) return mail.raw;
    for (const recipient of recipients) await client.command(`RCPT TO:<${recipient}>`);
    await client.command('DATA', /^354 /);
    client.write(`${sampleMessage()}.\r\n`);
    return (await client.reply()).raw;
  } finally {
    await client.quit();
  }
}
