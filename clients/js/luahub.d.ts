// Types of luahub.js (docs/client.md). Checked by `tsc --noEmit` in
// tests/browser/types.test.mjs against clients/js/test/types-check.ts.

export const VERSION: string;

/** Any frame the server sends: the envelope of docs/protocol.md. */
export interface Frame {
  type: string;
  id?: number | string;
  room_id?: string;
  to?: string | string[];
  from?: string;
  payload?: Record<string, any>;
  seq?: number;
  timestamp?: number;
  [field: string]: any;
}

/** A room frame with a seq (chat, and what handlers publish). */
export interface SeqFrame extends Frame {
  room_id: string;
  seq: number;
  timestamp: number;
}

export interface Ack extends Frame {
  type: 'ack' | 'pong';
}

export type ErrorCode =
  | 'bad_json' | 'bad_message' | 'unknown_type' | 'not_in_room' | 'not_found'
  | 'forbidden' | 'rate_limited' | 'handler_error' | 'unavailable'
  // the library's own
  | 'disconnected' | 'timeout' | 'closed'
  | (string & {});

export class LuahubError extends Error {
  constructor(code: ErrorCode, message?: string, frame?: Frame);
  code: ErrorCode;
  /** The error frame, when the server sent one. */
  frame?: Frame;
}

export type State = 'connecting' | 'open' | 'closed';

export interface StateDetail {
  attempt?: number;
  user?: string;
  connId?: string;
  code?: number;
  reason?: string;
  /** closed: whether the client will connect again, and after how many ms. */
  reconnect?: boolean;
  delay?: number;
}

export interface ResetInfo {
  room: string;
  /** The last seq delivered before, and its epoch. */
  since: number | null;
  epoch: string | null;
  /** The room's seq and epoch now. */
  seq: number;
  newEpoch: string;
  epochChanged: boolean;
  /** How many messages history still had after `since` (delivered next). */
  messages: number;
}

export type Status = 'online' | 'away' | 'busy' | 'offline';

export interface BackoffOptions {
  /** ms; the first ceiling (default 500). */
  base?: number;
  /** ms; no delay is longer (default 15000). */
  cap?: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, opts?: BackoffOptions): number;

export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export interface ConnectOptions {
  /** Development mode: the user id (?user=). */
  user?: string;
  /** A JWT (?token=), or a function that returns one, called at each connect. */
  token?: string | (() => string | Promise<string>);
  /** A WebSocket constructor where there is no global one (Node < 22: ws's). */
  WebSocket?: new (url: string) => WebSocketLike;
  backoff?: BackoffOptions;
  /** ms a request waits for its answer (and for a connection); 0: forever. Default 15000. */
  requestTimeout?: number;
  /** ms of silence after which the client pings, and drops a connection that does not answer. 0: off. Default 25000. */
  heartbeat?: number;
  /** ms between two typing frames sent by Room.typing() (default 2000). */
  typingInterval?: number;
  /** ms a received typing hint lasts (default 4000). */
  typingTimeout?: number;
}

export interface RequestOptions {
  timeout?: number;
}

export interface PresenceFrame extends Frame {
  type: 'presence';
  payload: { user_id: string; status: Status };
  /** true for a change seen when subscriptions were renewed after a reconnect. */
  synthetic?: boolean;
}

type Unsubscribe = () => void;

declare class Emitter<Events extends Record<string, (...args: any[]) => void>> {
  on<K extends keyof Events & string>(type: K, fn: Events[K]): Unsubscribe;
  off<K extends keyof Events & string>(type: K, fn: Events[K]): void;
  once<K extends keyof Events & string>(type: K, fn: Events[K]): Unsubscribe;
}

export interface ClientEvents {
  state: (state: State, detail: StateDetail) => void;
  welcome: (frame: Frame) => void;
  presence: (frame: PresenceFrame) => void;
  /** An error frame that answers no request (a frame sent without id). */
  error: (frame: Frame) => void;
  reset: (info: ResetInfo) => void;
  rejoin_error: (info: { room: string; error: LuahubError }) => void;
  /** Every frame. */
  '*': (frame: Frame) => void;
  /** Any other frame type, custom handlers' included. */
  [type: string]: (...args: any[]) => void;
}

export type RoomEvents = {
  message: (frame: SeqFrame, info: { replayed: boolean }) => void;
  reset: (info: ResetInfo) => void;
  event: (frame: Frame) => void;
  typing: (users: string[]) => void;
  members: (members: string[] | null) => void;
};

export interface JoinOptions {
  /** The room's frames with a seq, each seq once and in order, across reconnects. */
  onMessage?: RoomEvents['message'];
  /** A rejoin could not bring back every missed message (history too short, or a new epoch). */
  onReset?: RoomEvents['reset'];
  /** The room's other frames: user_joined, user_left, typing, custom ones. */
  onEvent?: RoomEvents['event'];
  onTyping?: RoomEvents['typing'];
  onMembers?: RoomEvents['members'];
  /** Resume from a known place (a seq and epoch stored earlier). */
  since?: number;
  epoch?: string;
}

export interface HistoryAck extends Ack {
  room_id: string;
  epoch: string;
  seq: number;
  messages: SeqFrame[];
}

export class SeqTracker {
  last: number | null;
  epoch: string | null;
  syncing: boolean;
  live(frame: SeqFrame): 'deliver' | 'hold' | 'duplicate' | 'stale';
  joined(ack: Frame, since?: number | null): { reset: boolean; frames: SeqFrame[] };
}

export class Room extends Emitter<RoomEvents> {
  readonly client: Client;
  readonly name: string;
  /** Sorted user ids (null in rooms too big to list them). */
  members: string[] | null;
  memberCount: number | null;
  left: boolean;
  /** The last seq delivered (null before the first join). */
  readonly seq: number | null;
  readonly epoch: string | null;
  readonly typers: string[];
  send(payload: Record<string, any>, opts?: RequestOptions): Promise<Ack & { seq: number }>;
  typing(): boolean;
  history(opts?: { since?: number; limit?: number }): Promise<HistoryAck>;
  info(): Promise<Ack>;
  listMembers(opts?: { after?: string; limit?: number }): Promise<Ack & { members: string[]; next: string | null }>;
  leave(): Promise<void>;
}

export class Client extends Emitter<ClientEvents> {
  constructor(url?: string | URL, opts?: ConnectOptions);
  readonly options: ConnectOptions;
  state: State;
  /** From the welcome. */
  user: string | null;
  connId: string | null;
  rooms: Map<string, Room>;
  statuses: Map<string, Status>;
  request(type: string, fields?: Record<string, any>, opts?: RequestOptions): Promise<Ack>;
  notify(type: string, fields?: Record<string, any>): boolean;
  join(room: string, opts?: JoinOptions): Promise<Room>;
  room(name: string): Room | undefined;
  sendTo(to: string | string[], payload: Record<string, any>, opts?: RequestOptions): Promise<Ack & { delivered: number }>;
  setStatus(status: Status): Promise<Ack & { status: Status }>;
  subscribe(users: string | string[]): Promise<Record<string, Status | undefined>>;
  presenceOf(user: string): Status | undefined;
  close(): void;
  reconnect(): void;
}

export function connect(url?: string | URL, opts?: ConnectOptions): Client;
export function connect(opts: ConnectOptions): Client;
export default connect;
