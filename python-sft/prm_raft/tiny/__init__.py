"""The embedded default's world: tinymath (a synthetic task with exactly checkable steps), its exact step labels,
and the training and comparison of the tiny policy and tiny reward models. Nothing in the production jobs
(sft, prm_train, prm_server, policy_server, grade, fetch_datasets) depends on it."""
