/** What every load generator is asked to do; the same options for smtp-source and ours. */
export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  /** Parallel SMTP sessions. */
  readonly concurrency: number;
  /** Messages in total. */
  readonly messages: number;
  /** Message size in bytes (payload, roughly). */
  readonly size: number;
  /** Recipients per message. */
  readonly recipients: number;
  /** Keep the connection for the next message (false: a new connection per message). */
  readonly reuse: boolean;
  readonly from: string;
  /** Recipient address; with several recipients a number is put in front (as smtp-source does). */
  readonly to: string;
}

export interface LoadResult {
  readonly generator: 'smtp-source' | 'node';
  readonly seconds: number;
  readonly accepted: number;
  readonly failed: number;
}
