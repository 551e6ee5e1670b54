/** The API group and version of both resources, CodeMate and CodeMateMessage (contract: DESIGN.md §1). */
export const group = 'codemate.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}` as const;
