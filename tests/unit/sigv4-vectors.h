/*
 * tests/unit/sigv4-vectors.h: AWS's Signature Version 4 test suite, header
 * form, as kept in awslabs/aws-c-auth tests/aws-signing-test-suite/v4 (commit
 * 495329c2433034bd8fd53fc6ba9e0202d3fac876): request.txt, header-canonical-request.txt,
 * header-string-to-sign.txt, header-signature.txt and the Authorization line
 * of header-signed-request.txt, verbatim.
 *
 * Every case whose canonical path is the request path encoded once is here
 * (S3 semantics: no normalisation). Left out, because they normalise the
 * path (/./, /.., //):
 * get-relative-normalized, get-relative-relative-normalized, get-slash-
 * dot-slash-normalized, get-slash-normalized, get-slash-pointless-dot-
 * normalized, get-slashes-normalized.
 *
 * All use service "service", region "us-east-1", AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY and 20150830T123600Z.
 */
struct vector {
	const char *name;
	const char *request;
	const char *canonical;
	const char *string_to_sign;
	const char *signature;
	const char *authorization;
	const char *token;
	int sign_body;          /* x-amz-content-sha256 signed (else omitted) */
	int omit_session_token; /* the token is sent but not signed */
};

static const struct vector vectors[] = {
	{ "get-header-key-duplicate",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1:value2\n"
	  "My-Header1:value2\n"
	  "My-Header1:value1\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:value2,value2,value1\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
	  "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
	  NULL, 0, 0 },
	{ "get-header-value-multiline",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1:value1\n"
	  "  value2\n"
	  "     value3\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:value1 value2 value3\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
	  "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd",
	  NULL, 0, 0 },
	{ "get-header-value-order",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1:value4\n"
	  "My-Header1:value1\n"
	  "My-Header1:value3\n"
	  "My-Header1:value2\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:value4,value1,value3,value2\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
	  "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
	  NULL, 0, 0 },
	{ "get-header-value-trim",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1: value1\n"
	  "My-Header2: \"a   b   c\"\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:value1\n"
	  "my-header2:\"a b c\"\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;my-header2;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
	  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
	  NULL, 0, 0 },
	{ "get-relative-relative-unnormalized",
	  "GET /example1/example2/../.. HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/example1/example2/../..\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "76115030c0f3ff06c20fdff5ceb6d5e0b835a1743e00b94fea7c7f381269437b",
	  "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b",
	  NULL, 0, 0 },
	{ "get-relative-unnormalized",
	  "GET /example/.. HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/example/..\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "0511f456aa502b456d135fcb9d749374a55228f9dbeedda1eacf659e05b0615b",
	  "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282",
	  NULL, 0, 0 },
	{ "get-slash-dot-slash-unnormalized",
	  "GET /./ HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/./\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "d67825e2268bd77a97c7688b8d72c31a3c1855b309808505ba0a9747d2465aa7",
	  "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145",
	  NULL, 0, 0 },
	{ "get-slash-pointless-dot-unnormalized",
	  "GET /./example HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/./example\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "73895e0e829507e28e39fd24669aedc2434a8e179e547e3c075b42921f952cdb",
	  "beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff",
	  NULL, 0, 0 },
	{ "get-slash-unnormalized",
	  "GET // HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "//\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "80cb39203d058af815de2b79250ff56e1b73eb9b4718c86556cdc6f150c5d209",
	  "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e",
	  NULL, 0, 0 },
	{ "get-slashes-unnormalized",
	  "GET //example// HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "//example//\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "528ec3105ee1f34ab014bb0a1a45da0ed2742a4fea3555149e5b4d5d201eb240",
	  "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
	  NULL, 0, 0 },
	{ "get-space-normalized",
	  "GET /example space/ HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/example%20space/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
	  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
	  NULL, 0, 0 },
	{ "get-space-unnormalized",
	  "GET /example space/ HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/example%20space/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
	  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
	  NULL, 0, 0 },
	{ "get-unreserved",
	  "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
	  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
	  NULL, 0, 0 },
	{ "get-utf8",
	  "GET /\xe1""\x88""\xb4"" HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/%E1%88%B4\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
	  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
	  NULL, 0, 0 },
	{ "get-vanilla-empty-query-key",
	  "GET /?Param1=value1 HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "Param1=value1\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
	  "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
	  NULL, 0, 0 },
	{ "get-vanilla-query-order-encoded",
	  "GET /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1 HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
	  "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
	  NULL, 0, 0 },
	{ "get-vanilla-query-order-key-case",
	  "GET /?Param2=value2&Param1=value1 HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "Param1=value1&Param2=value2\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
	  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	  NULL, 0, 0 },
	{ "get-vanilla-query-unreserved",
	  "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
	  "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
	  NULL, 0, 0 },
	{ "get-vanilla-query",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
	  NULL, 0, 0 },
	{ "get-vanilla-utf8-query",
	  "GET /?\xe1""\x88""\xb4""=bar HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "%E1%88%B4=bar\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
	  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
	  NULL, 0, 0 },
	{ "get-vanilla-with-session-token",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n"
	  "\n"
	  "host;x-amz-date;x-amz-security-token\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
	  "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
	  "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267", 0, 0 },
	{ "get-vanilla",
	  "GET / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "GET\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
	  NULL, 0, 0 },
	{ "post-header-key-case",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  NULL, 0, 0 },
	{ "post-header-key-sort",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1:value1\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:value1\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
	  "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
	  NULL, 0, 0 },
	{ "post-header-value-case",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n"
	  "My-Header1:VALUE1\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "my-header1:VALUE1\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;my-header1;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
	  "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
	  NULL, 0, 0 },
	{ "post-sts-header-after",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==", 0, 1 },
	{ "post-sts-header-before",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n"
	  "\n"
	  "host;x-amz-date;x-amz-security-token\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
	  "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
	  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==", 0, 0 },
	{ "post-vanilla-empty-query-value",
	  "POST /?Param1=value1 HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "Param1=value1\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
	  "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
	  NULL, 0, 0 },
	{ "post-vanilla-query",
	  "POST /?Param1=value1 HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "Param1=value1\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
	  "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
	  NULL, 0, 0 },
	{ "post-vanilla",
	  "POST / HTTP/1.1\n"
	  "Host:example.amazonaws.com\n",
	  "POST\n"
	  "/\n"
	  "\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "host;x-amz-date\n"
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	  NULL, 0, 0 },
	{ "post-x-www-form-urlencoded-parameters",
	  "POST / HTTP/1.1\n"
	  "Content-Type:application/x-www-form-urlencoded; charset=utf-8\n"
	  "Host:example.amazonaws.com\n"
	  "Content-Length:13\n"
	  "\n"
	  "Param1=value1",
	  "POST\n"
	  "/\n"
	  "\n"
	  "content-length:13\n"
	  "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "a89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d",
	  "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
	  NULL, 1, 0 },
	{ "post-x-www-form-urlencoded",
	  "POST / HTTP/1.1\n"
	  "Content-Type:application/x-www-form-urlencoded\n"
	  "Host:example.amazonaws.com\n"
	  "Content-Length:13\n"
	  "\n"
	  "Param1=value1",
	  "POST\n"
	  "/\n"
	  "\n"
	  "content-length:13\n"
	  "content-type:application/x-www-form-urlencoded\n"
	  "host:example.amazonaws.com\n"
	  "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
	  "x-amz-date:20150830T123600Z\n"
	  "\n"
	  "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	  "AWS4-HMAC-SHA256\n"
	  "20150830T123600Z\n"
	  "20150830/us-east-1/service/aws4_request\n"
	  "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
	  "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
	  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
	  NULL, 1, 0 },
};
