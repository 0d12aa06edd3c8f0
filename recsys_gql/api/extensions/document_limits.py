"""One concern: refuse documents too large or too deep to read, before they are validated.

A nested ``similar { movie { similar … } }`` grows tenfold per level, so depth, aliases and
tokens are limited as the document is parsed and validated; in production introspection is
refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as create_alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_rule

from recsys_gql.settings import Settings


class DocumentLimits(SchemaExtension):
    """The query cost limits as one extension: when an operation starts, the token limit for
    parsing and the extra validation rules (depth, aliases; in production, no introspection).

    Strawberry's ``MaxTokensLimiter``, ``AddValidationRules`` and ``DisableIntrospection`` do
    the same as two or three extensions, and every extension costs every request a hook lookup
    in each phase; one extension costs one.
    """

    def __init__(self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.max_tokens = max_tokens
        self.validation_rules = rules

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        execution.parse_options["max_tokens"] = self.max_tokens
        execution.validation_rules = execution.validation_rules + self.validation_rules
        yield


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Depth, alias and token limits, plus no introspection in production, as one
    :class:`DocumentLimits`.

    The depth and alias rule classes are built once here: Strawberry's limiters build a new
    rule class per instance, and since the validation cache is keyed by the rule classes, a
    limiter made per request would make every request miss the cache.
    """
    rules: list[type[ASTValidationRule]] = [
        create_depth_rule(settings.max_query_depth, None),
        create_alias_rule(settings.max_query_aliases),
    ]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    frozen = tuple(rules)
    return [lambda: DocumentLimits(settings.max_query_tokens, frozen)]
