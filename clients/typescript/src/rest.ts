/** The REST call recovery needs: a conversation's messages after a seq, for `recovered: false`. */
import { ParleyError } from "./errors.js";
import type { MessageOut } from "./protocol.js";
import { isRecord } from "./socket.js";

export interface MessagePage {
  readonly items: MessageOut[];
  readonly has_more: boolean;
}

export type FetchLike = (url: string, init: { headers: { [name: string]: string } }) => Promise<{
  readonly status: number;
  json(): Promise<unknown>;
}>;

/** The most REST answers in one page (the server's maximum). */
export const REST_PAGE_MAX = 200;

export class RestClient {
  constructor(
    private readonly baseUrl: string,
    private readonly fetcher: FetchLike,
    private readonly token: () => Promise<string>,
  ) {}

  /** `GET /api/conversations/{id}/messages?after_seq=…`: ascending, at most `limit`. */
  async messagesAfter(conversationId: string, afterSeq: number, limit = REST_PAGE_MAX): Promise<MessagePage> {
    const url = new URL(`api/conversations/${encodeURIComponent(conversationId)}/messages`, withSlash(this.baseUrl));
    url.searchParams.set("after_seq", String(afterSeq));
    url.searchParams.set("limit", String(limit));
    let response: Awaited<ReturnType<FetchLike>>;
    try {
      response = await this.fetcher(url.toString(), {
        headers: { authorization: `Bearer ${await this.token()}`, accept: "application/json" },
      });
    } catch (error) {
      throw new ParleyError("UNAVAILABLE", `GET ${url.pathname} failed: ${String(error)}`);
    }
    const body: unknown = await response.json().catch(() => undefined);
    const envelope = isRecord(body) ? body : {};
    if (response.status !== 200 || !isRecord(envelope["data"])) {
      const error = isRecord(envelope["error"]) ? envelope["error"] : {};
      throw new ParleyError(
        typeof error["code"] === "string" ? error["code"] : "HTTP_ERROR",
        typeof error["message"] === "string" ? error["message"] : `GET ${url.pathname} answered ${response.status}`,
        { status: response.status },
      );
    }
    const data = envelope["data"];
    return { items: Array.isArray(data["items"]) ? (data["items"] as MessageOut[]) : [], has_more: data["has_more"] === true };
  }
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}
