// Allure 3 configuration of the conformance report. scripts/report.sh runs
// `allure generate --config scripts/allurerc.mjs` from the repository root, and every path
// here is relative to that root.
import { existsSync, readFileSync } from "node:fs";

const results = process.env.ALLURE_RESULTS ?? "reports/allure-results";

// The run writes its failure categories to categories.json in the Allure 2 format (the
// harness's reporting plugin holds the definitions). Allure 3 takes rules of the same shape
// from its configuration, so the report uses the very same ones.
function categoryRules() {
  const file = `${results}/categories.json`;
  if (!existsSync(file)) {
    return [];
  }
  return JSON.parse(readFileSync(file, "utf-8")).map(({ name, matchedStatuses, messageRegex }) =>
    messageRegex === undefined ? { name, matchedStatuses } : { name, matchedStatuses, messageRegex },
  );
}

export default {
  name: "MongooseIM upgrade conformance",
  output: process.env.ALLURE_REPORT ?? "reports/allure-report",
  // One line per build: the trend charts and each test's history come from here.
  historyPath: process.env.ALLURE_HISTORY ?? "reports/allure-history.jsonl",
  historyLimit: 60,
  categories: { rules: categoryRules() },
  plugins: {
    awesome: {
      options: {
        reportName: "MongooseIM upgrade conformance",
        groupBy: ["epic", "feature", "story"],
        singleFile: false,
      },
    },
  },
};
