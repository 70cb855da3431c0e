"""API: who am I (works with a token or a session)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField())


class MeApi(APIView):
    @extend_schema(responses=MeOutputSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "username": user.username,
            "role": user.role,
            "permissions": sorted(
                p.split(".", 1)[1] for p in user.get_all_permissions() if p.startswith("accounts.")
            ),
        }
        return Response(MeOutputSerializer(data).data)
