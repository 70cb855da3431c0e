"""Users (one per role), API clients with a token, API tokens."""

from __future__ import annotations

import factory

from apps.accounts.choices import Role, SecurityEventKind
from apps.accounts.models import ApiToken, SecurityEvent, User
from apps.accounts.services import api_token_create, user_role_set

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    """``UserFactory(role="engineer")``: a person with a password (``PASSWORD``) and that role.

    The role goes through ``user_role_set``, as in the product (admins become staff).
    """

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            user_role_set(user=self, role=extracted)
        if create:
            self.save()


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token made by ``api_token_create``; the raw key is on ``token.raw_key`` (shown once)."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory("tests.factories.accounts.ApiClientFactory", token=False)
    name = factory.Sequence(lambda n: f"token {n}")

    @classmethod
    def _create(cls, model_class, *args, user, name, **kwargs):
        token, raw_key = api_token_create(user=user, name=name)
        if kwargs:  # e.g. revoked_at, last_used_at
            for field, value in kwargs.items():
                setattr(token, field, value)
            token.save(update_fields=list(kwargs))
        token.raw_key = raw_key
        return token


class ApiClientFactory(UserFactory):
    """A machine account like ``api_client_create`` makes: role api_client, no usable
    password, one token (``user.token``, raw key ``user.raw_key``; ``token=False``: none)."""

    username = factory.Sequence(lambda n: f"pacs-{n}")
    password = factory.PostGenerationMethodCall("set_unusable_password")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create:
            user_role_set(user=self, role=extracted or Role.API_CLIENT)
            self.save()

    @factory.post_generation
    def token(self, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        token = ApiTokenFactory(user=self, name=f"{self.username} token")
        self.token, self.raw_key = token, token.raw_key


class SecurityEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecurityEvent

    kind = SecurityEventKind.LOGIN_FAILED
    username = factory.Sequence(lambda n: f"someone-{n}")
    ip_address = "127.0.0.1"
    path = "/accounts/login/"
