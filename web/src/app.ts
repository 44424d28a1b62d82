// Shared app state: who is signed in, navigation, the page title.

import type { Me } from './api.ts';

export interface App {
  me: Me | null;
  navigate(hash: string): void;
  setTitle(title: string): void;
}

export const app: App = {
  me: null,
  navigate(hash: string) {
    if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = hash;
  },
  setTitle(title: string) {
    document.title = title ? `${title} · Periscope` : 'Periscope';
  },
};

/** A mounted screen; returns its cleanup. */
export type Screen = (root: HTMLElement, params: Record<string, string>) => (() => void) | void;

/** Session data we only get once (the join token and one-liners come back from POST /api/sessions). */
export const createdSessions = new Map<string, import('./api.ts').Session>();
