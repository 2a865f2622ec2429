// Function modules for convex-test (this file has two dots, so Convex does not deploy it).
export const modules = import.meta.glob("./**/!(*.*.*)*.*s");
