from rest_framework import serializers


class TokenCreateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    key_hint = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_from_ip = serializers.IPAddressField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreateOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`. Shown only once.")
    token_info = TokenOutput()
    user = UserOutput()


class AppPasswordCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The app or device it is for, e.g. 'Symfonium on my phone'.")


class AppPasswordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hint = serializers.CharField(help_text="The password's first characters.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class AppPasswordCreateOutput(serializers.Serializer):
    password = serializers.CharField(help_text="Type it into the app with your user name. Shown only once.")
    username = serializers.CharField()
    server_url = serializers.CharField(help_text="The server address to type into the app.")
    app_password = AppPasswordOutput()
