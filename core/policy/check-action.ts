import { z } from 'zod';

/**
 * What to do about a check's result. Detection and policy are separate (as
 * in maddy's check actions): a plugin finds out what is true, and the config
 * says, for each result of each check, which of these happens.
 *
 *   ignore      a log line only
 *   tag         the message gets an `X-Petrel-Warning:` header
 *   quarantine  the message gets an `X-Petrel-Quarantine:` header; local
 *               delivery is to file it as junk
 *   defer       a 4xx reply: the client tries again later
 *   reject      a 5xx reply
 */
export const CHECK_ACTIONS = ['ignore', 'tag', 'quarantine', 'defer', 'reject'] as const;

export type CheckAction = (typeof CHECK_ACTIONS)[number];

/** The option schema for one action. */
export const checkAction = () => z.enum(CHECK_ACTIONS);

/** The action that weighs most (reject > defer > quarantine > tag > ignore). */
export function severest(actions: Iterable<CheckAction>): CheckAction {
  let worst: CheckAction = 'ignore';
  for (const action of actions) {
    if (CHECK_ACTIONS.indexOf(action) > CHECK_ACTIONS.indexOf(worst)) worst = action;
  }
  return worst;
}

/** True for the actions that only mark the message (applied at the message hook). */
export function isMark(action: CheckAction): action is 'tag' | 'quarantine' {
  return action === 'tag' || action === 'quarantine';
}
