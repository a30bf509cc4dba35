import { afterAll } from "bun:test";
import { removeTempDirs } from "../_harness/gateway.ts";
import { clusterSuite } from "./cluster.suite.ts";
clusterSuite("bun");
afterAll(removeTempDirs);
