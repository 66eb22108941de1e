"""The reference token-ledger rollup: balances, transfers and swap legs, as a StateMachine."""

from rollup_client.ledger.token_ledger import MAX_AMOUNT, TokenLedger

__all__ = ["MAX_AMOUNT", "TokenLedger"]
