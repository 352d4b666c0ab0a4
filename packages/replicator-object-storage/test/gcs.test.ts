import { Storage } from "@google-cloud/storage";
import { GcsResourceLeaseObjectStore } from "../src/gcs/index.js";
import { describeBackend } from "./backend-suite.js";
import { startGcsFake } from "./gcs-fake.js";

describeBackend(
  "Google Cloud Storage (local JSON-API fake)",
  async () => {
    const fake = await startGcsFake();
    const storage = () =>
      new Storage({ apiEndpoint: fake.endpoint, projectId: "omnirelay-test", useAuthWithCustomEndpoint: false });
    await storage().createBucket("audit");
    return {
      bucket: () => storage().bucket("audit"),
      // A page size of 2 makes every listing in the suite page, exercising pageToken handling.
      newStore: () => new GcsResourceLeaseObjectStore({ bucket: storage().bucket("audit"), pageSize: 2 }),
      close: () => fake.close(),
    };
  },
  { contentTypeOf: async (backend, key) => (await backend.bucket().file(key).getMetadata())[0].contentType },
);
