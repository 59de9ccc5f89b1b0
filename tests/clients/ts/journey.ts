// The engine's and the authors' journeys through openapi-fetch, typed by
// schema.d.ts, which openapi-typescript generates from the served schema
// (tests/clients/test_typescript_client.py). `tsc --noEmit` checks every path,
// parameter, body and answer field below against the schema; the lines marked
// ts-expect-error prove that it does check (a wrong type must fail there).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Schemas = components["schemas"];

function must<T>(data: T | undefined, what: string, response: Response): T {
  if (data === undefined) throw new Error(`${what}: HTTP ${response.status}`);
  return data;
}

export async function token(baseUrl: string, username: string, password: string): Promise<string> {
  const anonymous = createClient<paths>({ baseUrl });
  const { data, response } = await anonymous.POST("/api/v1/auth/token", {
    body: { username, password, name: "typescript client", scopes: ["content:read", "recommend"] },
  });
  const issued: Schemas["TokenResponse"] = must(data, "token", response);
  return issued.token;
}

export async function engineJourney(baseUrl: string, key: string, moduleId: number): Promise<void> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Token ${key}` } });

  const put = await api.PUT("/api/v1/hcps/{external_id}", {
    params: { path: { external_id: "HCP-TS-1" } },
    body: { specialty: "cardiology", segment: "digital", attributes: { years_in_practice: 12 } },
  });
  const hcp = must(put.data, "hcp", put.response);
  const externalId: string = hcp.external_id;

  const bulk = await api.POST("/api/v1/hcps/bulk", {
    body: { hcps: [{ external_id: "HCP-TS-2", specialty: "oncology" }] },
  });
  const created: number = must(bulk.data, "bulk", bulk.response).created;

  const event: Schemas["EventRequest"] = {
    event_id: "6f1c1a52-2d0e-4c55-8d4a-0c7e3f1b9a01",
    hcp: externalId,
    module: moduleId,
    type: "opened",
    occurred_at: new Date().toISOString(),
    channel: "email",
  };
  const events = await api.POST("/api/v1/events", { body: { events: [event, event] } });
  const result = must(events.data, "events", events.response);
  const counts: [number, number, number] = [
    result.accepted,
    result.duplicates,
    result.rejected.length,
  ];

  const recommended = await api.POST("/api/v1/recommendations", {
    params: { header: { "Idempotency-Key": "ts-journey-1" } },
    body: {
      hcp: externalId,
      k: 3,
      channel: "email",
      slots: ["efficacy", "safety"],
      exclude: [moduleId],
      explore: true,
    },
  });
  const answer = must(recommended.data, "recommendations", recommended.response);
  for (const item of answer.items) {
    const score: number = item.score;
    const propensity: number = item.propensity;
    const headline: string = item.content.headline;
    void [score, propensity, headline, item.slot, item.module];
  }
  const recommendationId: string = answer.recommendation_id;

  const listed = await api.GET("/api/v1/content", {
    params: { query: { channel: "email", brand: "cardiozen", page_size: 5 } },
  });
  const page = must(listed.data, "content", listed.response);
  const total: number = page.count;
  const one = await api.GET("/api/v1/content/{module}", {
    params: { path: { module: moduleId } },
  });
  const approved = must(one.data, "content item", one.response);
  const version: number = approved.version;

  const feed = await api.GET("/api/v1/content", {
    params: { query: { changed_since: "0", page_size: 100 } },
  });
  const changes = must(feed.data, "changes", feed.response);
  const cursor: string = changes.next_cursor;
  const more: boolean = changes.has_more;
  const again = await api.GET("/api/v1/content", {
    params: { query: { changed_since: cursor } },
  });
  void again.data?.tombstones.map((t) => [t.status, t.module, t.version_id]);
  void again.data?.results.map((item) => [item.module, item.content.headline, more]);

  const affinity = await api.GET("/api/v1/hcps/{external_id}/affinity", {
    params: { path: { external_id: externalId } },
  });
  const tonality: Record<string, number> | undefined = affinity.data?.tonality;
  const model = await api.GET("/api/v1/affinity/model");
  const modelVersion: string | undefined = model.data?.model_version;
  const train = await api.POST("/api/v1/affinity/train", {});
  const taskId: string | undefined = train.data?.task_id;

  void [created, counts, recommendationId, total, version, tonality, modelVersion, taskId];

  // @ts-expect-error k is an integer, not a string
  await api.POST("/api/v1/recommendations", { body: { hcp: externalId, k: "five" } });
  // @ts-expect-error an event's type is one of the event types
  await api.POST("/api/v1/events", { body: { events: [{ ...event, type: "liked" }] } });
  // @ts-expect-error there is no such path
  await api.GET("/api/v1/contents");
}

export async function authoringJourney(
  baseUrl: string,
  authorKey: string,
  reviewerKeys: string[],
  password: string,
): Promise<number> {
  const author = createClient<paths>({ baseUrl, headers: { Authorization: `Token ${authorKey}` } });
  const made = await author.POST("/api/v1/modules", {
    body: {
      title: "TypeScript module",
      headline: "Fewer events",
      body: "In the pivotal trial, fewer events were seen.",
      key_message: "Fewer events.",
      call_to_action: "Read the study",
      brand: "cardiozen",
      market: "UK",
      channels: ["email"],
      tags: { message: "efficacy", theme: ["outcomes"], tonality: "clinical", format: "text" },
    },
  });
  const module = must(made.data, "module", made.response);
  const submitted = await author.POST("/api/v1/modules/{id}/submit", {
    params: { path: { id: module.id } },
  });
  must(submitted.data, "submit", submitted.response);
  for (const key of reviewerKeys) {
    const reviewer = createClient<paths>({ baseUrl, headers: { Authorization: `Token ${key}` } });
    const queue = await reviewer.GET("/api/v1/reviews", { params: { query: { mine: true } } });
    const tasks = must(queue.data, "reviews", queue.response).results;
    for (const task of tasks.filter((t) => t.module === module.id)) {
      const decided = await reviewer.POST("/api/v1/reviews/{id}/decision", {
        params: { path: { id: task.id } },
        body: { decision: "approve", comment: "Fine.", password },
      });
      must(decided.data, "decision", decided.response);
    }
  }
  const final = await author.GET("/api/v1/modules/{id}", { params: { path: { id: module.id } } });
  const status: Schemas["VersionStatusEnum"] = must(final.data, "module", final.response).status;
  if (status !== "approved") throw new Error(`module ${module.id} is ${status}`);
  return module.id;
}
