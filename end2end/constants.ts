import * as path from "node:path";

/** The demo's admin password in end-to-end runs (the demo prints a random one otherwise). */
export const ADMIN_PASSWORD = "e2e-admin-password-1";
/** Where the setup project saves the admin's signed-in browser state. */
export const ADMIN_STATE = path.join(__dirname, ".auth", "admin.json");
