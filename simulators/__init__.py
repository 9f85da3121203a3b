"""Stand-ins for what cannot be reached from here, for `streamdesk up --simulator`, the tests and the benchmarks.

- `simulators.freshdesk`: a Freshdesk API v2 simulator (not Freshdesk) on loopback: tickets, conversations, the
  knowledge base and attachments from a deterministic generated account, with Freshdesk's pagination, rate limits,
  errors and key checks.
- `simulators.sleep_cohort`: a synthetic cohort of users' sleep diaries, questionnaires, mobile data and treatment
  records, for the debate's tests and benchmarks.

Installed with the product (the CLI's `up --simulator` uses the Freshdesk one) but kept out of `pipeline/`: nothing
in the pipeline depends on them.
"""
