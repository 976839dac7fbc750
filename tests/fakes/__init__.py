"""Local fake servers speaking third-party protocols, for tests and benchmarks (no internet here).

- `tests.fakes.openai_server.FakeOpenAI`: OpenAI's HTTP API (chat completions, moderations,
  models), driven through the real `openai` SDK; also a CLI for benchmarks.

Import from the modules themselves: this package re-exports nothing, so that
`python -m tests.fakes.openai_server` does not import the module twice. None of them imports
Django or pytest.
"""
