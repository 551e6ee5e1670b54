/**
 * Where the CodeMate API lives: its group, version, kinds and plurals. Free of zod on purpose: the CLI's
 * quick commands (list, describe, completion) name the resources without loading the schemas, which
 * costs more than the rest of their start-up.
 */
export const group = 'codemate.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;
export const kind = 'CodeMate';
export const plural = 'codemates';
export const messageKind = 'CodeMateMessage';
export const messagePlural = 'codematemessages';
