import { afterAll } from "bun:test";
import { removeTempDirs } from "../_harness/gateway.ts";
import { accountsSuite } from "./accounts.suite.ts";
import { benchSuite } from "./bench.suite.ts";
import { cliSuite } from "./cli.suite.ts";
import { controlSuite } from "./control.suite.ts";
import { federationSuite } from "./federation.suite.ts";
import { handlerSuite } from "./handlers.suite.ts";
import { hardeningSuite } from "./hardening.suite.ts";
import { informerSuite } from "./informer.suite.ts";
import { listenerSuite } from "./listeners.suite.ts";
import { loginSuite } from "./login.suite.ts";
import { sdkSuite } from "./sdk.suite.ts";

listenerSuite("deno");
cliSuite("deno");
handlerSuite("deno");
loginSuite("deno");
accountsSuite("deno");
sdkSuite("deno");
controlSuite("deno");
federationSuite("deno");
informerSuite("deno");
benchSuite("deno");
hardeningSuite("deno");

afterAll(removeTempDirs);
