// What the relay accepts as a username and a password, as data: the relay
// enforces these (relay/auth/accounts.ts) and the web shows them next to every
// field that sets one, before anything is submitted (web/src/views/accounts.ts).
// One place, so the hint and the refusal cannot drift apart.

export interface PasswordRules {
  /** Fewest characters (UTF-16 code units, as JavaScript's `length` counts them). */
  minLength: number;
  /** Most characters; a longer one is refused, not cut. */
  maxLength: number;
}

export const PASSWORD_RULES: PasswordRules = Object.freeze({ minLength: 10, maxLength: 1024 });

/** 1-32 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit. */
export const USERNAME_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;
export const USERNAME_RULE = 'username must be 1-32 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit';

/** The rules in words, for a hint under a password field. */
export function passwordRulesText(rules: PasswordRules = PASSWORD_RULES): string {
  return `${rules.minLength} to ${rules.maxLength} characters; any characters count, spaces included (a few words make a good one).`;
}

/** Why `password` would be refused, or undefined when it follows the rules. */
export function passwordProblem(password: string, rules: PasswordRules = PASSWORD_RULES): string | undefined {
  if (password.length < rules.minLength) return `password must be at least ${rules.minLength} characters long (this one has ${password.length})`;
  if (password.length > rules.maxLength) return `password must be at most ${rules.maxLength} characters long (this one has ${password.length})`;
  return undefined;
}
