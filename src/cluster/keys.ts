/**
 * Where a cluster keeps its state in Redis (docs/CLUSTER.md, "Redis keys").
 * Everything of one user sits under the user's hash tag, beside its inbox
 * (`{u:NAME}`), so the delivery script reads presence and stores in one
 * slot; what belongs to one node under `{n:NODE}`; the registry of nodes
 * under one tag of its own.
 * @module
 */

export class ClusterKeys {
  constructor(readonly prefix: string) {}

  /** The user's presence: a hash of node -> "epoch plain ack" (sessions there that do not / do acknowledge). */
  presence(user: string): string {
    return `${this.prefix}{u:${user}}:p`;
  }

  /** The user's sharded channel: deliveries for the user's sessions on other nodes. */
  channel(user: string): string {
    return `${this.prefix}{u:${user}}:n`;
  }

  /** The user whose channel this is; undefined for another channel. */
  userOfChannel(channel: string): string | undefined {
    const head = `${this.prefix}{u:`;
    return channel.startsWith(head) && channel.endsWith("}:n") ? channel.slice(head.length, -3) : undefined;
  }

  /** The users a node registered in one epoch, with their session counts: what a purge of that node undoes. */
  nodeUsers(node: string, epoch: number): string {
    return `${this.prefix}{n:${node}}:u:${epoch}`;
  }

  /** A node's control channel: probes it sends itself, disconnects other nodes ask of it. */
  control(node: string): string {
    return `${this.prefix}{n:${node}}:c`;
  }

  /** The registry: live nodes by last heartbeat (sorted set), their info (hash of JSON), purges under way (sorted set). */
  registry(): [nodes: string, info: string, purging: string] {
    const base = `${this.prefix}{cluster}`;
    return [`${base}:nodes`, `${base}:info`, `${base}:purging`];
  }
}
