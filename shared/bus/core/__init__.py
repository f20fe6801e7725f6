"""The bus library's sans-IO parts: pure functions the asyncio shells in ``shared.bus`` call."""
